; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins, so the specific forms (methods, decorated) come first.

(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition name: (identifier) @name)) @definition.method))

(class_definition
  body: (block
    (function_definition name: (identifier) @name) @definition.method))

(decorated_definition
  definition: (class_definition name: (identifier) @name)) @definition.class

(decorated_definition
  definition: (function_definition name: (identifier) @name)) @definition.function

(class_definition name: (identifier) @name) @definition.class

(function_definition name: (identifier) @name) @definition.function

(module
  (expression_statement
    (assignment left: (identifier) @name) @definition.constant))

(call function: (identifier) @name) @reference.call

(call function: (attribute attribute: (identifier) @name)) @reference.call

(decorator (identifier) @name) @reference.call

(class_definition superclasses: (argument_list (identifier) @name) @reference.type)

(type (identifier) @name) @reference.type

(import_from_statement name: (dotted_name (identifier) @name .)) @reference.import

(import_from_statement
  name: (aliased_import name: (dotted_name (identifier) @name .))) @reference.import

(import_statement name: (dotted_name (identifier) @name .)) @reference.import

(import_statement
  name: (aliased_import name: (dotted_name (identifier) @name .))) @reference.import

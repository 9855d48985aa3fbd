; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins; a name that is defined is not also a reference.

[
  (class_declaration name: (identifier) @name)
  (record_declaration name: (identifier) @name)
] @definition.class

[
  (interface_declaration name: (identifier) @name)
  (annotation_type_declaration name: (identifier) @name)
] @definition.interface

(enum_declaration name: (identifier) @name) @definition.type

(method_declaration name: (identifier) @name) @definition.method

(field_declaration
  (modifiers "static" "final")
  declarator: (variable_declarator name: (identifier) @name)) @definition.constant

(method_invocation name: (identifier) @name) @reference.call

(object_creation_expression type: (type_identifier) @name) @reference.call

(object_creation_expression
  type: (generic_type (type_identifier) @name)) @reference.call

(type_identifier) @name @reference.type

(import_declaration (scoped_identifier name: (identifier) @name)) @reference.import

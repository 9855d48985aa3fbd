; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins.

(method_definition
  name: (property_identifier) @name
  (#not-eq? @name "constructor")) @definition.method

(class_declaration name: (identifier) @name) @definition.class

(class name: (identifier) @name) @definition.class

[
  (function_declaration name: (identifier) @name)
  (generator_function_declaration name: (identifier) @name)
  (function_expression name: (identifier) @name)
] @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(assignment_expression
  left: (member_expression property: (property_identifier) @name)
  right: [(arrow_function) (function_expression)]) @definition.function

(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function

(program
  (lexical_declaration
    "const"
    (variable_declarator name: (identifier) @name)) @definition.constant)

(program
  (export_statement
    declaration: (lexical_declaration
      "const"
      (variable_declarator name: (identifier) @name)) @definition.constant))

(call_expression
  function: (identifier) @name
  (#not-eq? @name "require")) @reference.call

(call_expression
  function: (member_expression property: (property_identifier) @name)) @reference.call

(new_expression constructor: (identifier) @name) @reference.call

(class_heritage (identifier) @name) @reference.type

(import_specifier name: (identifier) @name) @reference.import

(import_clause (identifier) @name) @reference.import

(jsx_opening_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call

(jsx_self_closing_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call

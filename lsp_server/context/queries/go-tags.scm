; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins; a name that is defined is not also a reference.

(function_declaration name: (identifier) @name) @definition.function

(method_declaration name: (field_identifier) @name) @definition.method

(method_elem name: (field_identifier) @name) @definition.method

(type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface

(type_spec name: (type_identifier) @name type: (struct_type)) @definition.class

[
  (type_spec name: (type_identifier) @name)
  (type_alias name: (type_identifier) @name)
] @definition.type

(const_spec name: (identifier) @name) @definition.constant

(package_clause (package_identifier) @name) @definition.module

(call_expression
  function: [
    (identifier) @name
    (selector_expression field: (field_identifier) @name)
    (parenthesized_expression (identifier) @name)
  ]) @reference.call

(type_identifier) @name @reference.type

(import_spec path: (interpreted_string_literal (interpreted_string_literal_content) @name))
  @reference.import

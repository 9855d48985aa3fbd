; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins; a name that is defined is not also a reference.

(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
  ]) @definition.function

(translation_unit
  (declaration
    declarator: [
      (function_declarator declarator: (identifier) @name)
      (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    ]) @definition.function)

[
  (struct_specifier name: (type_identifier) @name body: (_))
  (union_specifier name: (type_identifier) @name body: (_))
] @definition.class

[
  (enum_specifier name: (type_identifier) @name body: (_))
  (type_definition declarator: (type_identifier) @name)
] @definition.type

[
  (preproc_def name: (identifier) @name)
  (preproc_function_def name: (identifier) @name)
] @definition.macro

(call_expression function: (identifier) @name) @reference.call

(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call

(type_identifier) @name @reference.type

(preproc_include path: (string_literal (string_content) @name)) @reference.import

(preproc_include path: (system_lib_string) @name) @reference.import

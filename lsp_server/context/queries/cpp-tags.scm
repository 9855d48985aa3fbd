; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins; a name that is defined is not also a reference.

(function_definition
  declarator: [
    (function_declarator declarator: (qualified_identifier name: (identifier) @name))
    (function_declarator declarator: (field_identifier) @name)
    (reference_declarator
      (function_declarator declarator: (qualified_identifier name: (identifier) @name)))
    (pointer_declarator
      declarator: (function_declarator
        declarator: (qualified_identifier name: (identifier) @name)))
  ]) @definition.method

(field_declaration_list
  (function_definition
    declarator: (function_declarator declarator: (identifier) @name)) @definition.method)

(field_declaration
  declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method

(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (reference_declarator (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
  ]) @definition.function

(translation_unit
  (declaration
    declarator: [
      (function_declarator declarator: (identifier) @name)
      (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    ]) @definition.function)

(declaration_list
  (declaration
    declarator: [
      (function_declarator declarator: (identifier) @name)
      (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    ]) @definition.function)

[
  (class_specifier name: (type_identifier) @name body: (_))
  (struct_specifier name: (type_identifier) @name body: (_))
  (union_specifier name: (type_identifier) @name body: (_))
] @definition.class

[
  (enum_specifier name: (type_identifier) @name body: (_))
  (type_definition declarator: (type_identifier) @name)
  (alias_declaration name: (type_identifier) @name)
] @definition.type

(namespace_definition name: (namespace_identifier) @name) @definition.module

[
  (preproc_def name: (identifier) @name)
  (preproc_function_def name: (identifier) @name)
] @definition.macro

(call_expression
  function: [
    (identifier) @name
    (field_expression field: (field_identifier) @name)
    (qualified_identifier name: (identifier) @name)
    (template_function name: (identifier) @name)
    (qualified_identifier name: (template_function name: (identifier) @name))
  ]) @reference.call

(type_identifier) @name @reference.type

(preproc_include path: (string_literal (string_content) @name)) @reference.import

(preproc_include path: (system_lib_string) @name) @reference.import

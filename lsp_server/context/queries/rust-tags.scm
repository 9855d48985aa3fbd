; Tags for sparkedit's context engine. Convention: @name on the identifier, and on the
; whole node @definition.<kind> or @reference.<kind>. When several patterns tag the same
; name, the earlier pattern wins; a name that is defined is not also a reference.

(declaration_list
  [
    (function_item name: (identifier) @name)
    (function_signature_item name: (identifier) @name)
  ] @definition.method)

(function_item name: (identifier) @name) @definition.function

(function_signature_item name: (identifier) @name) @definition.function

[
  (struct_item name: (type_identifier) @name)
  (enum_item name: (type_identifier) @name)
  (union_item name: (type_identifier) @name)
] @definition.class

(trait_item name: (type_identifier) @name) @definition.interface

(type_item name: (type_identifier) @name) @definition.type

(mod_item name: (identifier) @name) @definition.module

(macro_definition name: (identifier) @name) @definition.macro

[
  (const_item name: (identifier) @name)
  (static_item name: (identifier) @name)
] @definition.constant

(call_expression function: (identifier) @name) @reference.call

(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call

(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call

(call_expression
  function: (generic_function
    function: [
      (identifier) @name
      (field_expression field: (field_identifier) @name)
      (scoped_identifier name: (identifier) @name)
    ])) @reference.call

(macro_invocation macro: (identifier) @name) @reference.call

(type_identifier) @name @reference.type

(use_declaration argument: (identifier) @name) @reference.import

(use_declaration argument: (scoped_identifier name: (identifier) @name)) @reference.import

(use_as_clause path: (scoped_identifier name: (identifier) @name)) @reference.import

(use_list (identifier) @name) @reference.import

(use_list (scoped_identifier name: (identifier) @name)) @reference.import

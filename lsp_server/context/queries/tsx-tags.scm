; inherits: typescript
; TSX adds JSX: a capitalised element name is a component, a call of it.

(jsx_opening_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call

(jsx_self_closing_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call

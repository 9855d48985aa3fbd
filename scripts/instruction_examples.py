"""Instruction edits in the eight languages, from templated instructions a program can check.

Layout: exactly `build_edit_prompt` with an instruction (`<|instruction|>` instruction "\\n"
then the next-edit layout; the history is empty; the region is `selection_region` of the
selected function or statements). Kinds, and where each is well-defined:

- docstring (all): a docstring, `/** */` (JS, TS, Java, C, C++), `///` (Rust), or a Go
  comment that starts with the function's name;
- type_hints (python, typescript, tsx): only the types certain from literal defaults and
  returned literals (`-> None` / `: void` without a returned value);
- rename (all): a local or a parameter, everywhere in the selected function;
- fstring (python): `%` and `.format` with simple arguments -> f-strings;
- extract_constant (all; Rust: string literals): a repeated or magic literal -> a named
  constant right before the function (a Java class constant before the method);
- wrap (python, javascript, typescript, tsx, java, cpp): try/except or try/catch around
  statements of a function body.

A selection that already satisfies the instruction (a documented function, a fully typed
one, f-strings only) gives a "no change" example: the rewrite is the region unchanged.
Each example is verified before it is used: `check_instruction` (instruction_checks.py,
also what the evaluation scores a model's rewrite with) and the server's instruction gate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edit_core import EditExample, apply, fit, gate
from edit_propagation import parsed_file
from edit_syntax import Parsed, Syntax, default_syntax, line_start
from instruction_checks import check_instruction
from instruction_plans import Plan, docstring, fstring, named_functions, rename, type_hints
from instruction_refactors import WRAP_LANGUAGES, extract_constant, wrap
from training_data import Pieces, SourceFile
from tree_sitter import Node

from lsp_server.edits import selection_region

__all__ = ["InstructionExample", "KINDS", "check_instruction", "instruction_example",
           "kinds_for"]

Planner = Callable[[random.Random, Parsed, Node], Plan | None]
ALL = ("python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp")
KINDS: dict[str, tuple[Planner, tuple[str, ...]]] = {
    "docstring": (docstring, ALL),
    "type_hints": (type_hints, ("python", "typescript", "tsx")),
    "rename": (rename, ALL),
    "fstring": (fstring, ("python",)),
    "extract_constant": (extract_constant, ALL),
    "wrap": (wrap, WRAP_LANGUAGES),
}
PHRASINGS = {
    "docstring": ("Add a docstring", "Document this function", "Write a doc comment for {name}",
                  "add documentation to {name}", "Add a doc comment", "document {name}"),
    "type_hints": ("Add type hints", "Add type annotations to {name}",
                   "annotate the types where they are certain", "Type this function"),
    "rename": ("Rename {old} to {new}", "rename `{old}` to `{new}`",
               "Change the name {old} to {new}", "{old} -> {new}", "call {old} {new} instead"),
    "fstring": ("Use f-strings", "Convert the string formatting to f-strings",
                "replace % and .format with f-strings", "Modernize the string formatting"),
    "extract_constant": ("Extract {literal} into a constant named {name}",
                         "Move the magic value {literal} to a constant {name}",
                         "introduce a constant {name} for {literal}",
                         "Replace {literal} with a named constant {name}"),
    "wrap": ("Add error handling", "Wrap this in a {block}", "wrap these lines in {block}",
             "Catch errors here and re-raise them", "Handle exceptions around this"),
}


@dataclass(frozen=True)
class InstructionExample:
    kind: str
    args: Mapping[str, str | int]  # for check_instruction
    example: EditExample

    @property
    def language(self) -> str:
        return self.example.language

    @property
    def rewrite(self) -> str:
        return self.example.rewrite

    @property
    def satisfied(self) -> bool:
        """The selection already did what was asked: the answer is "no change"."""
        return bool(self.args.get("satisfied"))

    def pieces(self) -> Pieces:
        return self.example.pieces()

    def training_pieces(self) -> Pieces:
        return self.example.training_pieces()

    def check(self, rewrite: str, syntax: Syntax | None = None) -> bool:
        """Does a model's rewrite of the region do what the instruction asked?"""
        return check_instruction(self.kind, self.language, self.example.text,
                                 self.example.applied(rewrite), self.args, syntax)


def kinds_for(language: str) -> list[str]:
    return [kind for kind, (_, languages) in KINDS.items() if language in languages]


def _instruction(rng: random.Random, plan: Plan, language: str) -> str:
    block = "try/except" if language == "python" else "try/catch"
    text = rng.choice(PHRASINGS[plan.kind]).format(block=block, **plan.values)
    # sometimes typed in lower case (the names in it keep theirs)
    return text if rng.random() < 0.8 else text[:1].lower() + text[1:]


def from_plan(rng: random.Random, p: Parsed, path: str, plan: Plan, max_chars: int,
              syntax: Syntax | None = None) -> InstructionExample | None:
    """The checked example that carries out `plan` on the document `p`, or None."""
    text, language = p.text, p.language
    if text[line_start(text, plan.start):plan.start].strip():
        return None  # the selection does not start its line
    region = selection_region(text, plan.start, plan.end)
    if any(s < region.start or e > region.end for s, e, _ in plan.replacements):
        return None
    rewrite = apply(text[region.start:region.end], plan.replacements, region.start)
    example = fit(EditExample(plan.kind, language, path, text, region, (), rewrite,
                              instruction=_instruction(rng, plan, language)), max_chars)
    args = {**plan.args, "start": region.start, "tail": len(text) - region.end}
    if plan.satisfied:
        args["satisfied"] = 1
    if example is None or gate(example, syntax) is not None or \
            not check_instruction(plan.kind, language, text, example.applied(), args, syntax):
        return None
    return InstructionExample(plan.kind, args, example)


def instruction_example(rng: random.Random, f: SourceFile, max_chars: int,
                        kind: str | None = None,
                        syntax: Syntax | None = None) -> InstructionExample | None:
    """One instruction example of `kind` (default: any that suits the file's language) on
    a function of `f` chosen at random, or None."""
    syntax = syntax or default_syntax()
    kinds = kinds_for(f.language)
    kind = kind if kind is not None else (rng.choice(kinds) if kinds else None)
    if kind is None or kind not in kinds:
        return None
    p = parsed_file(f, syntax, rng)
    functions = named_functions(p) if p is not None else []
    if p is None or not functions:
        return None
    plan = KINDS[kind][0](rng, p, rng.choice(functions))
    return from_plan(rng, p, f.path, plan, max_chars, syntax) if plan is not None else None

"""JHumanEval builder: segment HumanEval prompts, translate the prose, reassemble, validate.

- ``segment``   prompt → code / text / example segments; reassembly is byte-exact
- ``examples``  is an example in a translation still the same example?
- ``validate``  every check of a translated set against HumanEval (sandboxed solutions)
- ``backends``  DeepL, OpenAI-compatible chat, local HF model; ``memory`` aligns an existing translation
- ``cache``     on-disk translation cache, so a rebuild costs nothing
- ``glossary``  post-edit table for terms a translator gets wrong
- ``build``     HumanEval + backend → a JHumanEval file in the published schema
"""

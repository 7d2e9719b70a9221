"""The scenario language: typed models, the YAML loader with positions, the
abort-condition library and the JSON Schema. Imports only the fault layer
(for kinds and their params models) and the foundation modules."""

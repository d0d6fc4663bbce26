"""The prompts the server sends to language models, installed as the `tool_server.prompts` package.

The files beside this one are package data: read them with `importlib.resources.files(__name__)`.
This file exists so that editable installs can import the mapped folder (setuptools' editable
finder does not map a namespace package to a folder outside its parent).
"""

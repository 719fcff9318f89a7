"""The ``recagent`` command line: a thin front end over the layers below.

Each module holds one command group and only parses options, calls its layer and renders the
result with rich: :mod:`cli.setup_cmds` (models, catalogue, demo), :mod:`cli.catalogue_cmds`
(index, search), :mod:`cli.agent_cmds` (llm, recommend, chat), :mod:`cli.eval_cmds` (eval),
:mod:`cli.bench_cmds` (bench). :func:`cli.app.main` is the entry point and the one place that
turns a :class:`tools.errors.RecagentError` into a message and an exit code.
"""

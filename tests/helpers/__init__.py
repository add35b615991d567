"""What the tests share, imported by them (a test module never imports another test module):

- pipeline: source rows, running the pipeline, reading its windows, runs and failures
- cli: `python -m pytools` as a subprocess in a clean environment, and checks of its output
- databases: databases of the session server, URLs with other parameters, roles' grants
- servers: where the session server comes from (TEST_DATABASE_URL, testcontainers, local)
- sql_lexer: a small SQL lexer for the static checks
"""

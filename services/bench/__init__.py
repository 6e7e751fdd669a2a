"""The hot-path benchmark: the system driven through its public topics, as a shop would, beside
a floor pipeline that does the same I/O plainly, on the same broker and database in the same
run. Every figure is also given as a ratio to the floor, so noisy machines still compare.

`deploy/bin/stack bench` brings up a broker, a database and services of the bench's own, made
afresh, and runs `python -m services.bench` on them: what it leaves never reaches the shared
system that `stack up` and the tests use.
"""

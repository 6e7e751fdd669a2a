"""The hot-path benchmark: the system driven through its public topics, as a shop would, beside
a floor pipeline that does the same I/O plainly, on the same broker and database in the same
run. Every figure is also given as a ratio to the floor, so noisy machines still compare.

`deploy/bin/stack bench` brings the stack up and runs `python -m services.bench`.
"""

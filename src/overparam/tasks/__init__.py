"""Tasks: each one module (or subpackage) here and one yaml in conf/task/; `base.Task` says what a task offers."""

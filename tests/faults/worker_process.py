"""Run the workers service with the test-only job kinds, for the fault tests."""

import sys

import services.toolkit.runner as runner  # first: it applies eventlet's monkey patching
import tests.jobkinds  # noqa: F401 - registers the test-only job kinds

if __name__ == "__main__":
    sys.exit(runner.main(sys.argv[1:]))

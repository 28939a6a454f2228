import sys

from mlfunctions_stack.cli import main

sys.exit(main())

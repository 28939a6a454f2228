import sys

from mlfunctions_stack.up import main

sys.exit(main())

import sys

from npu_compiler.cli import main

sys.exit(main())

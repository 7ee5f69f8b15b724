import sys

from mytorch.course.cli import main

sys.exit(main())

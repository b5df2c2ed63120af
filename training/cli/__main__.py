"""`python -m multitask_bert.training.cli ...`: the `multitask-bert` command."""

import sys

from . import main

sys.exit(main())

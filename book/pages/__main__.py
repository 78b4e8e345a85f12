import sys

from book.pages import main

sys.exit(main())

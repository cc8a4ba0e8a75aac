from mtlrec.cli import main

raise SystemExit(main())

from mtlrec.app.cli import main

raise SystemExit(main())

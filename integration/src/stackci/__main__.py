from stackci.cli import main

raise SystemExit(main())

from ductape_local.cli import main

raise SystemExit(main())

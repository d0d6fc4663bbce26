from tool_server.cli import main

raise SystemExit(main())

"""Who may do what: users, robots, tokens, access rules, audit."""

"""Runtime drivers (simulated, docker, swarm) and the reconciler loop (ARCHITECTURE.md,
"Going live"). Drivers know no database: `app.services.engines` and `app.services.reconcile`
call them outside every transaction."""

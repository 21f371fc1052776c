"""The steps of ``core.planner.plan_guest``, one concern per module; only the planner uses them."""

// AlgatePinholes

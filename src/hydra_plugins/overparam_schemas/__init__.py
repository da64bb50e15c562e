"""overparam's config source: `/schema/<module.Class>` in a defaults list is that class's constructor schema."""

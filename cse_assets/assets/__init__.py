"""Asset modules, one per domain; `definitions.ASSET_GROUPS` maps each module to its group name."""

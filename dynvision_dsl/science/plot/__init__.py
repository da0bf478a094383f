"""Pictures of a model: the connectivity drawing (`graph`) and its time view (`timeline`)."""

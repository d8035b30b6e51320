"""napari dock widgets: thin front-ends that call core/io functions in background workers."""

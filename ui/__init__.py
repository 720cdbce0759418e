"""shapeot.ui: the desktop application (PyQt5 + pyvistaqt), installed from ui/ as ``shapeot.ui``.

It holds no science: every action calls the same public functions as the command line.
"""

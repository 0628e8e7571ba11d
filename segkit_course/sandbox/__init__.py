"""Where the course's tools run code they did not write: sandboxes and guarded kernels.

- :mod:`segkit_course.sandbox.bwrap`: the operating-system sandbox (bubblewrap, Linux) that
  ``segkit grade`` runs each student's exercises in: no network, nothing of the
  machine visible but the system, Python and segkit, nothing writable but its work
  folder, memory, CPU and process caps;
- :mod:`segkit_course.sandbox.guard`: the in-process guard (a Python audit hook) that refuses
  writes outside a folder, programs and network: the fallback where bubblewrap is
  missing, and a second line inside the sandbox;
- :mod:`segkit_course.sandbox.kernel`: Jupyter kernel sessions with the guard installed
  (``segkit verify``) and the current Python's kernel (``segkit run-course``).

``segkit_course.grading`` and ``segkit_course`` both import from here; this package imports
neither of them.
"""

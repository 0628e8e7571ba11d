"""Sphinx configuration of the course website (built by `make site`, i.e.
`python -m segkit_course.site`, which stages the notebooks next to this file first).

Pages are the solution notebooks with their stored outputs: nothing is executed. The
course's address (launch buttons, links) comes from pyproject.toml's [project.urls].
"""

import os

from segkit_course.address import BRANCH, course_url

# `segkit build-site` passes the address it stamped into the pages; pyproject.toml's otherwise
URL = os.environ.get("SEGKIT_COURSE_URL") or course_url()

project = "segkit: image segmentation with U-Net in PyTorch"
author = "the segkit course authors"
copyright = "the segkit course authors"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "downloads/**"]
nb_execution_mode = "off"  # pages show the stored outputs; nothing is re-run
nb_merge_streams = True
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "segkit course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"
html_theme_options = {
    "repository_url": URL,
    "repository_branch": BRANCH,
    "path_to_docs": "",  # a page lessons/NN_name opens lessons/NN_name.ipynb in Colab
    "launch_buttons": {"colab_url": "https://colab.research.google.com",
                       "notebook_interface": "jupyterlab"},
    "use_repository_button": True,
    "use_download_button": True,
    "show_navbar_depth": 1,
    "home_page_in_toc": True,
}
html_context = {"default_mode": "light"}  # the theme needs a mode; light is the default

"""pytest settings for docs/: the scripts here are run by Sphinx and tests/test_tutorials.py."""

# pytest-doctestplus collects doctests from every module under a test path, importing it: that
# would run the tutorial and figure scripts (and the Sphinx configuration) at collection.
collect_ignore_glob = ["tutorials/*.py", "figures/*.py", "_ext/*.py", "conf.py"]

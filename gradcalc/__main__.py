"""``python -m gradcalc``: the same as the ``gradcalc`` command."""

from gradcalc.cli import main

if __name__ == "__main__":
    main()

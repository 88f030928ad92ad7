"""The gradcalc grammar (``gradcalc.lark``), installed as the package ``gradcalc.grammar``."""

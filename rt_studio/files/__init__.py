"""Rules as files: fixtures and rule files exported, checked and imported all or nothing
(`rule_files`), rules an app ships in its modules (`standard_rules`), and the checks of what a
rule names on this site (`rule_checks`), which every save and import uses.
"""

"""dicenlp: Dice Loss for Data-imbalanced NLP Tasks (Li et al., ACL 2020) on today's stack."""
__version__ = "0.1.0"

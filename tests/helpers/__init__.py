"""Test helpers shared by the test tiers, each defined once: import them, never copy them.

``paths`` (repository locations), ``waiting`` (polling with a deadline), ``archives`` (tar.gz in memory),
``reviews`` (a Kaggle-format fixture frame), ``tinymodels`` (a tiny BERT), ``cloud`` (the local cloud as a
process or in this process), ``awslike`` (moto's SageMaker endpoints failing as AWS's do), ``feedback``
(the feedback fixture files and ``parse``).
Fixtures stay in the ``conftest.py`` files and use these.
"""

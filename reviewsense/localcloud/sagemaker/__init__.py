"""Local stand-ins for SageMaker compute: the same API calls as on AWS, and the work really happens.

moto 5.2.5 stores training and processing jobs but runs nothing (they are "Completed" at once and no
``model.tar.gz`` appears), lacks ``StopTrainingJob`` and ``UpdateEndpoint``, and its ``InvokeEndpoint``
returns a static body. The training pipeline (Step Functions ``aws-sdk:sagemaker:*`` tasks), the
watchdog and the scoring Lambdas must work unchanged on the local cloud, so ``install`` patches moto's
SageMaker backend and response classes and the sagemaker-runtime response and hands the work to a
``LocalSageMaker``:

* training jobs run the script-mode entry point from ``sagemaker_submit_directory`` in a subprocess with
  the SageMaker environment (channels downloaded from S3, ``SM_*`` variables, hyperparameters as
  ``--key value``); output lines are matched against the job's metric definitions and published to
  CloudWatch where SageMaker publishes them; the model directory becomes ``model.tar.gz`` in S3;
* processing jobs download their inputs, run the container entry point with ``/opt/ml/processing``
  mapped to a work directory, and upload their outputs;
* endpoints serve every production variant from its own process (``endpoint_server.py``) loading the
  model's ``code/inference.py`` handler, with weighted routing, data capture to S3 and blue/green updates;
* a job or model server that names a framework image with a package manifest (``chalicelib.images``)
  sees only that image's packages plus what its container installs (``requirements.txt`` of the
  source dir, ``code/requirements.txt`` of the model, nothing for processing), as in SageMaker.

Creating a job or an endpoint returns at once; the work happens in background threads that talk to the
local cloud through boto3 like any other client. The training code they run is packed by
``reviewsense.codepublish``, the one builder used locally and on AWS.

One module per concern:

* ``common``: names, S3 URIs, hyperparameter arguments, archives, error shapes, clients, job environment;
* ``telemetry``: CloudWatch Logs and metrics, buffered;
* ``process``: running one job's process (streams, stop, max runtime);
* ``scriptmode``: the script-mode training contract (channels, ``SM_*``, metric definitions);
* ``containers`` and ``imageguard``: the framework images' packages and install steps;
* ``jobs``: training and processing jobs;
* ``variants`` and ``endpoints``: variant servers, deployments, routing and invocation;
* ``capture``: the data capture writer;
* ``manager``: ``LocalSageMaker``, composed of the above;
* ``patches``: the moto patches, ``install`` and ``uninstall``.
"""

from reviewsense.localcloud.sagemaker.common import hyperparameter_args, split_s3_uri
from reviewsense.localcloud.sagemaker.endpoints import InvokeResult
from reviewsense.localcloud.sagemaker.manager import LocalSageMaker
from reviewsense.localcloud.sagemaker.patches import install, uninstall
from reviewsense.localcloud.sagemaker.variants import VariantServer

__all__ = [
    "InvokeResult",
    "LocalSageMaker",
    "VariantServer",
    "hyperparameter_args",
    "install",
    "split_s3_uri",
    "uninstall",
]

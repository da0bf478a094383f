"""One rank of test_train.py's DistributedDataParallel check, started by
`python -m torch.distributed.run`: trains through `dynvision_dsl.science.train.train`
with the JSON arguments in argv[1] and saves this rank's final weights."""
import json
import os
import sys
from pathlib import Path

import torch

from dynvision_dsl.science.train import train


def main() -> None:
    kw = json.loads(sys.argv[1])
    weights = Path(kw.pop("weights"))
    result = train(**kw, progress=False, echo=lambda line: None)
    rank = int(os.environ["RANK"])
    assert result.rank == rank
    torch.save({k: v.cpu() for k, v in result.model.state_dict().items()}, weights / f"rank{rank}.pt")


if __name__ == "__main__":
    main()

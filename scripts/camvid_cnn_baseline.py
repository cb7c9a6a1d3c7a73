"""CNN baselines for the CamVid result in docs/results.md, trained exactly like the WaveMix run.

Same data, joint augmentation, loss (cross-entropy, void ignored), metrics (torchmetrics per-class IoU, mIoU,
pixel accuracy), optimiser (AdamW, no weight decay on 1-D parameters), schedule (1 warm-up epoch, cosine to
1 %), batch size, epochs and bf16 autocast as ``scripts/train_camvid.sh``; only the network differs. Model
selection on val mIoU, test evaluated once with the best weights.

  nice -n 19 python scripts/camvid_cnn_baseline.py --model unet --out runs/camvid-unet
  nice -n 19 python scripts/camvid_cnn_baseline.py --model lraspp_mobilenet_v3 --out runs/camvid-lraspp

``unet``: a stride-2 stem + 4-level U-Net (Conv-BN-ReLU pairs, 22→176 channels, bilinear upsampling): 0.93 M
parameters and 0.89 GMACs at 180×240, close to the 0.88 M / 0.67 GMACs of ``wavemix_seg_64_6_l2_camvid``.
``lraspp_mobilenet_v3`` / ``deeplabv3_mobilenet_v3``: torchvision's LRASPP / DeepLabV3 on its dilated
MobileNetV3-Large backbone, randomly initialised, with the backbone's ``width_mult`` solved so that the parameter
count matches ``--params`` (default: that of ``wavemix_seg_64_6_l2_camvid``), see ``wavemixer.bench.peers``.

``results.json`` also records the process's peak RSS and the wall time at which val mIoU first reached each
of 30/35/40 %.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from wavemixer.bench.peers import SEGMENTATION_PEER_FAMILIES, solve_peer
from wavemixer.tasks.segmentation import SegmentationTask
from wavemixer.train.config import TrainConfig

WAVEMIX_CAMVID_PARAMS = 881_867  # wavemix_seg_64_6_l2_camvid


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv_bn_s2(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SmallUNet(nn.Module):
    """Plain U-Net: double 3x3 convs per level, max-pool down, bilinear up + skip concatenation.

    Like the WaveMix model it starts with a stride-2 convolution and ends with a x2 bilinear upsampling, so that
    its cost (0.89 GMACs at 180x240) is close to WaveMix's (0.67 GMACs) as well as its parameter count.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (22, 44, 88, 176)) -> None:
        super().__init__()
        self.stem = conv_bn_s2(3, widths[0])
        self.down = nn.ModuleList()
        cin = widths[0]
        for w in widths:
            self.down.append(nn.Sequential(conv_bn(cin, w), conv_bn(w, w)))
            cin = w
        self.up = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.Sequential(conv_bn(cin + w, w), conv_bn(w, w)))
            cin = w
        self.head = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)


def build_model(name: str, num_classes: int, params: int) -> nn.Module:
    if name == "unet":
        return SmallUNet(num_classes)
    spec, _ = solve_peer(name, params, num_classes=num_classes, img_size=180)
    return spec.build()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["unet", *SEGMENTATION_PEER_FAMILIES], default="unet")
    p.add_argument("--params", type=int, default=WAVEMIX_CAMVID_PARAMS, help="parameter budget of the peers")
    p.add_argument("--data-dir", default="../shared/data/CamVid")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--input-size", type=int, default=128, help="square training crop")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/camvid-unet")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = TrainConfig(task="segmentation", dataset="camvid", data_dir=args.data_dir, trivial_augment=False, hflip=True,
                      input_size=args.input_size, subset=args.subset, val_fraction=0.1, seed=args.seed)  # fmt: skip
    task = SegmentationTask(cfg)
    data = task.build_data()
    model = build_model(args.model, data.info.num_classes, args.params)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [dict(params=decay, weight_decay=args.weight_decay), dict(params=no_decay, weight_decay=0.0)], lr=args.lr
    )
    loader = DataLoader(data.train, batch_size=args.batch_size, shuffle=True, drop_last=True)
    steps = len(loader)
    total, warmup = args.epochs * steps, steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        t = (step - warmup) / max(1, total - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    amp = torch.autocast("cpu", dtype=torch.bfloat16)

    @torch.no_grad()
    def evaluate(ds: object) -> dict[str, float]:
        model.eval()
        metrics = task.make_metrics(data.info, torch.device("cpu"))
        for x, y in DataLoader(ds, batch_size=8):
            with amp:
                out = model(x)
            task.update_metrics(metrics, out.float(), y)
        model.train()
        return task.compute_metrics(metrics)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{args.model} ({n_params:,} params): {len(data.train)} train / {len(data.val)} val", flush=True)
    best, best_state, best_epoch, history = -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0, loss_sum = time.perf_counter(), 0.0
        for x, y in loader:
            with amp:
                loss = task.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach())
        val = evaluate(data.val)
        history.append(dict(epoch=epoch, train_loss=loss_sum / steps, val_miou=val["miou"],
                            time_s=round(time.perf_counter() - start, 1)))  # fmt: skip
        mark = ""
        if val["miou"] > best:
            best, best_epoch, best_state, mark = val["miou"], epoch, copy.deepcopy(model.state_dict()), " *"
        print(f"epoch {epoch:3d}/{args.epochs} train_loss {loss_sum / steps:.4f} val_miou {val['miou']:.2f}{mark} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)  # fmt: skip
    wall = time.perf_counter() - start
    model.load_state_dict(best_state)
    test = evaluate(data.test)
    reached = {f"{goal}": next((h["time_s"] for h in history if h["val_miou"] >= goal), None) for goal in (30, 35, 40)}
    results = dict(model=args.model, params=n_params, seed=args.seed, epochs=args.epochs, best_epoch=best_epoch,
                   best_val_miou=best, test=test, wall_time_s=round(wall, 1), time_to_val_miou_s=reached,
                   peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   torch=torch.__version__, history=history)  # fmt: skip
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    torch.save(best_state, out_dir / "best.pt")
    print(f"best val miou {best:.2f} (epoch {best_epoch}); test miou {test['miou']:.2f} pixel_acc "
          f"{test['pixel_acc']:.2f}; {wall:.0f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

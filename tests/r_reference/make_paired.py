"""Write api_paired.csv: a stratified sample with two PSUs per stratum (BRR's shape).

27 counties of apipop that have at least two school districts are the strata;
two districts are drawn by simple random sampling in each, then up to 4
schools by simple random sampling within each drawn district. The counties
appear in a shuffled order (not sorted, so R's sorted-strata rule matters),
districts within a county in increasing order. pw = the inverse of the
inclusion probability. Run once (numpy's PCG64 with a fixed seed); the R
reference values in parity_reference.json are computed on this file.
"""

from pathlib import Path

import numpy as np
import pandas as pd

import skbalance as skb

population = skb.datasets.load_api("pop")
rng = np.random.default_rng(20261206)
districts_per_county = population.groupby("cname")["dnum"].nunique()
eligible = np.sort(districts_per_county[districts_per_county >= 2].index.to_numpy())
counties = rng.permutation(rng.choice(eligible, size=27, replace=False))
parts = []
for county in counties:
    in_county = population[population["cname"] == county]
    districts = np.sort(in_county["dnum"].unique())
    for district in np.sort(rng.choice(districts, size=2, replace=False)):
        schools = in_county[in_county["dnum"] == district]
        take = min(4, len(schools))
        chosen = schools.iloc[np.sort(rng.choice(len(schools), size=take, replace=False))]
        parts.append(chosen.assign(pw=len(districts) / 2 * len(schools) / take))
sample = pd.concat(parts, ignore_index=True)
columns = ["cds", "stype", "dnum", "snum", "cname", "sch.wide", "awards", "api00", "api99",
           "enroll", "pw"]
sample[columns].to_csv(Path(__file__).with_name("api_paired.csv"), index=False)

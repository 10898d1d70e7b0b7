"""Write api_two_stage.csv: a two-stage sample of California schools.

40 school districts drawn by simple random sampling from the 757 of apipop,
then up to 3 schools by simple random sampling within each drawn district.
fpc1 = 757 districts, fpc2 = the schools of the district; pw = the inverse of
the inclusion probability. Run once (numpy's PCG64 with a fixed seed); the
R reference values in survey_reference.json are computed on this file.
"""

from pathlib import Path

import numpy as np

import skbalance as skb

population = skb.datasets.load_api("pop")
rng = np.random.default_rng(20261129)
districts = np.sort(population["dnum"].unique())
drawn = rng.choice(districts, size=40, replace=False)
parts = []
for district in np.sort(drawn):
    schools = population[population["dnum"] == district]
    take = min(3, len(schools))
    chosen = schools.iloc[np.sort(rng.choice(len(schools), size=take, replace=False))]
    parts.append(chosen.assign(fpc1=len(districts), fpc2=len(schools),
                               pw=len(districts) / 40 * len(schools) / take))
sample = __import__("pandas").concat(parts, ignore_index=True)
columns = ["cds", "stype", "name", "dnum", "snum", "cname", "sch.wide", "comp.imp",
           "both", "awards", "api00", "api99", "enroll", "meals", "fpc1", "fpc2", "pw"]
sample[columns].to_csv(Path(__file__).with_name("api_two_stage.csv"), index=False)
print(sample.shape, sample["stype"].value_counts().to_dict())

"""Stackelberg toll pricing with a coupled contract constraint (Labbé, Marcotte & Savard 1998, in small).

A highway operator (the leader) sets tolls T = (T_bridge, T_tunnel) ∈ [0, 20]²; the users (the follower, one
LP: system-optimal routing) then ship two commodities at least cost, tolls included:

    commodity 1, demand 6:  bridge  2 + T_b,   toll-free road through town  10
    commodity 2, demand 4:  bridge  4 + T_b,   tunnel  3 + T_t,   road through town  8
    bridge capacity 8 (shared), tunnel capacity 3

    leader:    max_T  T_b·(bridge flow) + T_t·(tunnel flow)           (toll revenue: bilinear in T and q)
               s.t.   road-through-town flow <= 0.5                   (the concession contract: reads the follower)
    follower:  q ∈ argmin_q { Σ (cost + toll)·q :  demands, capacities, q >= 0 }

The revenue is bilinear, but on the follower's optimal set it equals the follower's total cost minus its
toll-free part, and by LP strong duality that cost is the follower's dual value: ``bilevel_to_kkt`` makes the
leader's objective linear this way (exact on the KKT set) and HiGHS solves the MILP to a certified optimum.

By hand. A user pays at most its toll-free alternative, and ties go to the leader (optimistic). The tunnel
(3 units, only commodity 2, alternative 8) is worth T_t = 5 whatever the bridge toll. Without the contract,
T_b = 8 makes commodity 1 indifferent (2 + 8 = 10) and sends its 6 units over the bridge (48), commodity 2's
fourth unit takes the road (bridge 4 + 8 > 8): revenue 48 + 15 = 63, one unit through town. The contract
(at most 0.5) forces that unit onto the bridge, which needs 4 + T_b <= 8: T_b = 4, 7 bridge units (within 8),

    T* = (4, 5),   q1* = (bridge 6, road 0),   q2* = (bridge 1, tunnel 3, road 0),   revenue* = 28 + 15 = 43

(at T*, commodity 2 is indifferent between all three routes; the optimistic follower fills the tunnel, the
leader's dearer route, first). tests/test_stackelberg_pricing.py checks 43 and 63 by enumeration over a grid
of T with scipy's linprog (follower optimum, then the leader's best among the follower's optima).
"""
import optdsl as od

DEMAND = (6.0, 4.0)
TOWN_CAP = 0.5


def build(contract: bool = True) -> od.Model:
    m = od.Model("stackelberg_pricing")
    T = m.variable(2, lb=0, ub=20, name="T")          # (bridge toll, tunnel toll)
    users = m.level("users")
    q1 = users.variable(2, lb=0, name="q1")            # commodity 1: (bridge, road)
    q2 = users.variable(3, lb=0, name="q2")            # commodity 2: (bridge, tunnel, road)
    users.minimize((2 + T[0]) * q1[0] + 10 * q1[1] + (4 + T[0]) * q2[0] + (3 + T[1]) * q2[1] + 8 * q2[2])
    users.subject_to(q1[0] + q1[1] == DEMAND[0], name="demand1")
    users.subject_to(q2[0] + q2[1] + q2[2] == DEMAND[1], name="demand2")
    users.subject_to(q1[0] + q2[0] <= 8, name="bridge_cap")
    users.subject_to(q2[1] <= 3, name="tunnel_cap")
    m.maximize(T[0] * (q1[0] + q2[0]) + T[1] * q2[1])
    if contract:
        m.subject_to(q1[1] + q2[2] <= TOWN_CAP, name="town_traffic")  # a leader constraint on follower flows
    return m


EXPECTED = {"objective": 43.0, "rtol": 1e-7, "atol_values": 1e-7, "status": "OPTIMAL",
            "values": {"T": [4.0, 5.0], "q1": [6.0, 0.0], "q2": [1.0, 3.0, 0.0]}}
SOLVERS = ["mip"]

if __name__ == "__main__":
    model = build()
    print(model.explain())
    res = model.solve()
    print(res, res.values, res.duals, res.certificates)

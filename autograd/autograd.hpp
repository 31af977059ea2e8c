// Everything autograd/ offers in one include: the differentiable op catalogue in namespace loupe
// (same names as loupe::ops, but recording graph nodes), backward/grad, grad mode, autocast, rule sets and
// gradcheck. This is what nn/, explain/ and user code include.
#pragma once

#include "autograd/autocast.hpp"
#include "autograd/engine.hpp"
#include "autograd/functions/attention.hpp"
#include "autograd/functions/binary.hpp"
#include "autograd/functions/conv.hpp"
#include "autograd/functions/device.hpp"
#include "autograd/functions/dropout.hpp"
#include "autograd/functions/index.hpp"
#include "autograd/functions/join.hpp"
#include "autograd/functions/linalg.hpp"
#include "autograd/functions/loss.hpp"
#include "autograd/functions/norm.hpp"
#include "autograd/functions/pool.hpp"
#include "autograd/functions/reduce.hpp"
#include "autograd/functions/resample.hpp"
#include "autograd/functions/softmax.hpp"
#include "autograd/functions/sort.hpp"
#include "autograd/functions/unary.hpp"
#include "autograd/functions/view.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/rules.hpp"
#include "tensor/ops.hpp"

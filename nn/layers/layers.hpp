// Every layer in one include.
#pragma once

#include "nn/layers/activation.hpp"
#include "nn/layers/basic.hpp"
#include "nn/layers/container.hpp"
#include "nn/layers/conv.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/embedding.hpp"
#include "nn/layers/norm.hpp"
#include "nn/layers/pool.hpp"
#include "nn/layers/transformer.hpp"

/* A TensorFlow Lite Micro-style firmware skeleton around an edgekit C-array export.
 *
 *   edgekit export model.tflite --format c-array --name model_data --out .   (or: make MODEL=...)
 *
 * model_data.h/.c hold the model bytes (16-byte aligned), their length and the labels from the
 * model's metadata, and MODEL_ARENA_BYTES, the tensor arena measured on TensorFlow Lite Micro.
 * The interpreter calls go through tflm_api.h; tflm_stubs.c implements them with STUBS, so the
 * printed scores are placeholders until real TFLM is linked in. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model_data.h"
#include "tflm_api.h"

/* The tensor arena: edgekit's C-array export runs the model on TensorFlow Lite Micro's real kernels
 * (the tflite-micro package) and writes the bytes it used as MODEL_ARENA_BYTES into model_data.h. */
#ifdef MODEL_ARENA_BYTES
#define ARENA_SIZE MODEL_ARENA_BYTES
#define ARENA_SOURCE "measured on TFLite Micro"
#else
#define ARENA_SIZE (32 * 1024) /* not measured at export time: size it with arena_used_bytes() */
#define ARENA_SOURCE "NOT measured (export with tflite-micro installed)"
#endif

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
static _Alignas(16) unsigned char tensor_arena[ARENA_SIZE];
#else
static unsigned char tensor_arena[ARENA_SIZE] __attribute__((aligned(16)));
#endif

static int check_model(void) {
  if (model_data_len < 8 || memcmp(model_data + 4, "TFL3", 4) != 0) {
    printf("error: model_data is not a TFLite flatbuffer (no TFL3 identifier at offset 4)\n");
    return 1;
  }
  if ((uintptr_t)model_data % 16 != 0) {
    printf("error: model_data is not 16-byte aligned\n");
    return 1;
  }
  printf("model: %u bytes, identifier TFL3 at offset 4, 16-byte aligned\n", model_data_len);
  return 0;
}

int main(void) {
  size_t n_in = 0, n_out = 0, i, best = 0;
  float* input;
  const float* scores;

  if (check_model() != 0) return 1;
  printf("arena: %u bytes (%s)\n", (unsigned)ARENA_SIZE, ARENA_SOURCE);
  printf("labels (%u):", model_data_labels_count);
  for (i = 0; i < model_data_labels_count; i++) printf(" %s", model_data_labels[i]);
  printf("\n");

  if (tflm_init(model_data, model_data_len, tensor_arena, sizeof tensor_arena) != 0) {
    printf("error: interpreter setup failed\n");
    return 1;
  }
  input = tflm_input(&n_in);
  for (i = 0; i < n_in; i++) input[i] = 0.0f; /* a real device copies a camera/sensor frame here */
  if (tflm_invoke() != 0) {
    printf("error: invoke failed\n");
    return 1;
  }
  scores = tflm_output(&n_out);
  for (i = 1; i < n_out; i++)
    if (scores[i] > scores[best]) best = i;
  printf("top class: %s (score %.3f)\n", best < model_data_labels_count ? model_data_labels[best] : "?",
         (double)scores[best]);
  return 0;
}

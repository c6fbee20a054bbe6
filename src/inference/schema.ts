import { Type, type Static } from '@sinclair/typebox';

export const InferenceSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'false keeps the block but runs no stage.' }),
    model_dir: Type.String({
      default: 'models/el-defect-lite',
      description:
        'Folder with model.json (its manifest: the model file, input, preprocessing, threshold, operating points) and the model file it names, relative to the gateway file. models/el-defect-lite is 0.3.0 (EfficientNet-Lite0, the accurate one), models/el-defect 0.2.0 (the fast one). A new model.json or model file renamed into place is checked and swapped in.',
    }),
    operating_point: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9_]*$',
        description:
          'A named operating point of the model (its model.json operating_points, e.g. balanced or strict: see the model card) instead of its default threshold. A model without that point is refused.',
      }),
    ),
    inbox: Type.String({ description: 'Folder the camera software writes images into (write, then rename into place), relative to the gateway file.' }),
    processed_dir: Type.Optional(Type.String({ description: 'Where images go once their verdict is in the buffer. Default <inbox>/processed.' })),
    rejected_dir: Type.Optional(Type.String({ description: 'Where unreadable images go, each with a .reason.txt. Default <inbox>/rejected.' })),
    keep_processed: Type.Integer({
      minimum: 0,
      maximum: 10_000_000,
      default: 10_000,
      description: 'Most images kept in processed/ (oldest removed first); 0 deletes them at once.',
    }),
    extensions: Type.Array(Type.String({ pattern: '^[a-z0-9]+$' }), {
      default: ['png', 'jpg', 'jpeg', 'tif', 'tiff'],
      description: 'File name endings taken from the inbox (lower case).',
    }),
    id_pattern: Type.Optional(
      Type.String({
        description:
          'Regular expression on the file name with named groups line, station and cell, e.g. ^(?<line>L\\d+)_(?<station>S\\d+)_(?<cell>\\d+)\\.png$. Without it (or when it does not match) the station is "default".',
      }),
    ),
    topic_template: Type.String({ default: '{site}/{gateway}/el/{station}', description: 'Topic of verdicts. Placeholders: {site} {gateway} {station}.' }),
    status_topic: Type.String({
      default: '{site}/{gateway}/status/el',
      description: 'Retained status of the stage: model in service, queue, counts, the last model error.',
    }),
    max_queue: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 256,
      description: 'Images queued for the worker at most; beyond that they wait in the inbox (backpressure).',
    }),
    max_batch: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 8,
      description:
        'Images per worker round trip when a queue builds up (one message each way, one buffer transaction, one round of file moves); the model itself runs image by image.',
    }),
    workers: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 1,
      description: 'Worker threads (each decodes and classifies one batch at a time); one per core the stage may use.',
    }),
    threads: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'ONNX Runtime intra-op threads per worker.' }),
    priority: Type.Union([Type.Literal('critical'), Type.Literal('normal'), Type.Literal('bulk')], {
      default: 'normal',
      description: 'Buffer eviction priority of verdicts.',
    }),
  },
  {
    additionalProperties: false,
    description: 'EL image defect detection: an inbox of images → ONNX model in a worker thread → verdicts through the buffer to MQTT.',
  },
);

export type InferenceConfig = Static<typeof InferenceSchema>;
